output "api_url" {
  description = "Base URL of the stage's HTTP API"
  value       = module.parley.api_url
}

output "webhook_url" {
  description = "Callback URL to configure in the Meta app"
  value       = module.parley.webhook_url
}

output "user_pool_id" {
  value = module.parley.user_pool_id
}

output "user_pool_client_id" {
  value = module.parley.user_pool_client_id
}

output "event_bus_name" {
  value = module.parley.event_bus_name
}
