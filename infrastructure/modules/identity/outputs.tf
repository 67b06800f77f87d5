output "user_pool_id" {
  value = aws_cognito_user_pool.this.id
}

output "user_pool_arn" {
  value = aws_cognito_user_pool.this.arn
}

output "user_pool_endpoint" {
  description = "Issuer host and path of the pool's tokens (without https://)."
  value       = aws_cognito_user_pool.this.endpoint
}

output "user_pool_client_id" {
  value = aws_cognito_user_pool_client.api.id
}
