module "http_api" {
  source = "../api"

  stage              = var.stage
  log_retention_days = var.log_retention_days
  jwt_issuer         = "https://cognito-idp.${data.aws_region.current.name}.amazonaws.com/${module.identity.user_pool_id}"
  jwt_audience       = [module.identity.user_pool_client_id]

  functions = {
    messages = { function_name = module.messages_api.function_name, invoke_arn = module.messages_api.invoke_arn }
    api      = { function_name = module.api.function_name, invoke_arn = module.api.invoke_arn }
    public   = { function_name = module.public_api.function_name, invoke_arn = module.public_api.invoke_arn }
    webhooks = { function_name = module.webhooks.function_name, invoke_arn = module.webhooks.invoke_arn }
  }

  # Keys are the template's event names; every route needs the Cognito JWT
  # unless it says otherwise.
  routes = {
    Messages      = { method = "ANY", path = "/v1/messages", function = "messages", authorized = true }
    MessagesProxy = { method = "ANY", path = "/v1/messages/{proxy+}", function = "messages", authorized = true }
    V1            = { method = "ANY", path = "/v1/{proxy+}", function = "api", authorized = true }
    # Stripe signs its webhook deliveries (Stripe-Signature); no bearer token.
    StripeWebhook = { method = "POST", path = "/webhooks/stripe", function = "api", authorized = false }
    Auth          = { method = "POST", path = "/v1/auth/{proxy+}", function = "public", authorized = false }
    # Invitation acceptance comes without a token; the more specific path wins over /v1/{proxy+}.
    AcceptInvitation = { method = "POST", path = "/v1/members/accept", function = "public", authorized = false }
    Jwks             = { method = "GET", path = "/.well-known/jwks.json", function = "public", authorized = false }
    OpenApi          = { method = "GET", path = "/openapi.json", function = "public", authorized = false }
    Health           = { method = "GET", path = "/health", function = "public", authorized = false }
    # WhatsApp webhooks are checked against the number's app secret instead.
    Verify  = { method = "GET", path = "/webhooks/whatsapp", function = "webhooks", authorized = false }
    Deliver = { method = "POST", path = "/webhooks/whatsapp", function = "webhooks", authorized = false }
  }
}
