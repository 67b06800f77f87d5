resource "aws_apigatewayv2_integration" "function" {
  for_each = var.functions

  api_id                 = aws_apigatewayv2_api.this.id
  integration_type       = "AWS_PROXY"
  integration_uri        = each.value.invoke_arn
  payload_format_version = "2.0"
}

resource "aws_apigatewayv2_route" "this" {
  for_each = var.routes

  api_id             = aws_apigatewayv2_api.this.id
  route_key          = "${each.value.method} ${each.value.path}"
  target             = "integrations/${aws_apigatewayv2_integration.function[each.value.function].id}"
  authorization_type = each.value.authorized ? "JWT" : "NONE"
  authorizer_id      = each.value.authorized ? aws_apigatewayv2_authorizer.cognito_jwt.id : null
}

# One grant per route, as SAM makes them: the API may invoke the function on
# that method and path only ({proxy+} becomes a wildcard).
resource "aws_lambda_permission" "route" {
  for_each = var.routes

  statement_id  = "AllowHttpApi-${each.key}"
  action        = "lambda:InvokeFunction"
  function_name = var.functions[each.value.function].function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.this.execution_arn}/*/${each.value.method == "ANY" ? "*" : each.value.method}${replace(each.value.path, "{proxy+}", "*")}"
}
