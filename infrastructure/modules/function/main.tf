locals {
  package = "${var.artifacts_dir}/${var.binary}/bootstrap.zip"
}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/aws/lambda/${var.function_name}"
  retention_in_days = var.log_retention_days
}

resource "aws_lambda_function" "this" {
  function_name    = var.function_name
  description      = var.description
  role             = aws_iam_role.this.arn
  filename         = local.package
  source_code_hash = filebase64sha256(local.package)
  handler          = "bootstrap"
  runtime          = "provided.al2023"
  architectures    = ["arm64"]
  memory_size      = var.memory_size
  timeout          = var.timeout

  reserved_concurrent_executions = var.reserved_concurrent_executions

  environment {
    variables = merge(var.shared_environment, var.environment)
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.this.name
  }

  tracing_config {
    mode = "Active"
  }

  # A function that starts before its role may write logs loses its first lines.
  depends_on = [aws_iam_role_policy.runtime, aws_iam_role_policy.grants]
}

resource "aws_lambda_event_source_mapping" "stream" {
  count = var.stream_source == null ? 0 : 1

  function_name                      = aws_lambda_function.this.arn
  event_source_arn                   = var.stream_source.arn
  starting_position                  = var.stream_source.starting_position
  batch_size                         = var.stream_source.batch_size
  maximum_batching_window_in_seconds = var.stream_source.maximum_batching_window_in_seconds
  parallelization_factor             = var.stream_source.parallelization_factor
  maximum_retry_attempts             = var.stream_source.maximum_retry_attempts
  function_response_types            = var.stream_source.function_response_types

  # Lambda checks the role's stream permissions when the mapping is created.
  depends_on = [aws_iam_role_policy.runtime]
}

resource "aws_lambda_event_source_mapping" "queue" {
  count = var.queue_source == null ? 0 : 1

  function_name                      = aws_lambda_function.this.arn
  event_source_arn                   = var.queue_source.arn
  batch_size                         = var.queue_source.batch_size
  maximum_batching_window_in_seconds = var.queue_source.maximum_batching_window_in_seconds
  function_response_types            = var.queue_source.function_response_types

  depends_on = [aws_iam_role_policy.runtime]
}
