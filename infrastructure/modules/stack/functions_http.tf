# HTTP functions: the parley-http binary, one function per endpoint group.

# Messages: send (enqueue) and read. Appends events; reads read models.
module "messages_api" {
  source = "../function"

  function_name      = "${local.prefix}-api-messages"
  description        = "Parley /v1/messages"
  binary             = "parley-http"
  artifacts_dir      = var.artifacts_dir
  log_retention_days = var.log_retention_days
  shared_environment = local.function_environment
  environment = {
    PARLEY_HANDLER = "messages"
  }

  statements = [
    local.grant.event_store,
    # Search checks a query's further words by key, in batches.
    {
      actions   = ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem"]
      resources = [module.data.read_models_table_arn, "${module.data.read_models_table_arn}/index/*"]
    },
    {
      actions   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]
      resources = [module.data.idempotency_table_arn]
    },
    local.grant.data_key,
    # Data keys: read (wrapped) to open personal data, created on first seal of a scope.
    local.grant.keys_table,
    {
      actions   = ["s3:GetObject", "s3:PutObject"]
      resources = ["${module.data.blob_bucket_arn}/*"]
    },
  ]
}

# Conversations, contacts, numbers, templates and the rest of /v1: commands
# on aggregates and read-model queries.
module "api" {
  source = "../function"

  function_name      = "${local.prefix}-api"
  description        = "Parley /v1 API (conversations, contacts, numbers, templates, members, jobs, analytics, billing)"
  binary             = "parley-http"
  artifacts_dir      = var.artifacts_dir
  log_retention_days = var.log_retention_days
  shared_environment = local.function_environment
  environment = {
    PARLEY_HANDLER               = "api"
    PARLEY_STRIPE_SECRET_KEY     = var.stripe_secret_key
    PARLEY_STRIPE_WEBHOOK_SECRET = var.stripe_webhook_secret
  }

  statements = [
    local.grant.event_store,
    local.grant.read_models,
    # GDPR erasure drops the contact's messages from the search index.
    {
      actions   = ["dynamodb:BatchWriteItem"]
      resources = [module.data.read_models_table_arn]
    },
    {
      actions   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]
      resources = [module.data.idempotency_table_arn]
    },
    local.grant.data_key,
    # Data keys: read (wrapped) to open personal data, created on first
    # seal of a scope, destroyed by a GDPR erasure (crypto-shredding).
    {
      actions   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"]
      resources = [module.data.keys_table_arn]
    },
    # Presigned download links of exports and invoices are signed with this role.
    {
      actions   = ["s3:GetObject", "s3:PutObject"]
      resources = ["${module.data.blob_bucket_arn}/*"]
    },
    # GDPR erasure deletes the contact's stored media files.
    {
      actions   = ["s3:DeleteObject"]
      resources = ["${module.data.blob_bucket_arn}/*/media/inbound/*"]
    },
    # A GDPR export lists the tenant's archived months.
    {
      actions    = ["s3:ListBucket"]
      resources  = [module.data.blob_bucket_arn]
      conditions = [{ test = "StringLike", variable = "s3:prefix", values = ["archive/*"] }]
    },
    # Member management (invite, change role, remove) on the user pool.
    {
      actions = [
        "cognito-idp:AdminGetUser",
        "cognito-idp:AdminCreateUser",
        "cognito-idp:AdminUpdateUserAttributes",
        "cognito-idp:CreateGroup",
        "cognito-idp:AdminAddUserToGroup",
        "cognito-idp:AdminRemoveUserFromGroup",
        "cognito-idp:AdminUserGlobalSignOut",
        "cognito-idp:AdminDeleteUser",
      ]
      resources = [module.identity.user_pool_arn]
    },
    local.grant.send_mail,
  ]
}

# Signup, login and the other token-less auth routes, the OpenAPI document
# and health. Talks to Cognito and SES, not to the event log's hot path.
module "public_api" {
  source = "../function"

  function_name      = "${local.prefix}-api-public"
  description        = "Parley auth, OpenAPI and health"
  binary             = "parley-http"
  artifacts_dir      = var.artifacts_dir
  log_retention_days = var.log_retention_days
  shared_environment = local.function_environment
  environment = {
    PARLEY_HANDLER = "public"
  }

  statements = [
    local.grant.event_store,
    {
      actions = [
        "cognito-idp:SignUp",
        "cognito-idp:ConfirmSignUp",
        "cognito-idp:InitiateAuth",
        "cognito-idp:GlobalSignOut",
        "cognito-idp:RevokeToken",
        "cognito-idp:ForgotPassword",
        "cognito-idp:ConfirmForgotPassword",
        "cognito-idp:ChangePassword",
        "cognito-idp:UpdateUserAttributes",
        "cognito-idp:VerifyUserAttribute",
        "cognito-idp:AdminUpdateUserAttributes",
        "cognito-idp:AdminGetUser",
        "cognito-idp:GetUser",
        "cognito-idp:RespondToAuthChallenge",
        "cognito-idp:AdminUserGlobalSignOut",
        "cognito-idp:AdminCreateUser",
        "cognito-idp:AdminDeleteUser",
        "cognito-idp:CreateGroup",
        "cognito-idp:AdminAddUserToGroup",
        "cognito-idp:AdminRemoveUserFromGroup",
      ]
      resources = [module.identity.user_pool_arn]
    },
    local.grant.send_mail,
  ]
}

# WhatsApp webhooks: no bearer token; every delivery is checked against the
# number's app secret (X-Hub-Signature-256).
module "webhooks" {
  source = "../function"

  function_name      = "${local.prefix}-webhooks"
  description        = "Parley WhatsApp webhook receiver"
  binary             = "parley-http"
  memory_size        = 512
  artifacts_dir      = var.artifacts_dir
  log_retention_days = var.log_retention_days
  shared_environment = local.function_environment
  environment = {
    PARLEY_HANDLER = "webhooks"
  }

  statements = [
    local.grant.event_store,
    local.grant.read_models,
    local.grant.data_key,
    # Data keys: read (wrapped) to open personal data, created on first seal of a scope.
    local.grant.keys_table,
  ]
}
