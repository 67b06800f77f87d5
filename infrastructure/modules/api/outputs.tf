output "api_id" {
  value = aws_apigatewayv2_api.this.id
}

output "url" {
  description = "Base URL of the stage's HTTP API."
  value       = aws_apigatewayv2_stage.this.invoke_url
}
