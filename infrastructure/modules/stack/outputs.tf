# The template's Outputs.

output "api_url" {
  description = "Base URL of the stage's HTTP API"
  value       = module.http_api.url
}

output "webhook_url" {
  description = "Callback URL to configure in the Meta app"
  value       = "${module.http_api.url}/webhooks/whatsapp"
}

output "user_pool_id" {
  value = module.identity.user_pool_id
}

output "user_pool_client_id" {
  value = module.identity.user_pool_client_id
}

output "event_bus_name" {
  value = module.messaging.event_bus_name
}
