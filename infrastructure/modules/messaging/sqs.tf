locals {
  # Fourteen days, the most SQS keeps a message.
  message_retention_seconds = 1209600
}

resource "aws_sqs_queue" "outbound" {
  name = "parley-${var.stage}-outbound"
  # At least six times the sender's timeout, as AWS advises for SQS event sources.
  visibility_timeout_seconds = 180
  message_retention_seconds  = local.message_retention_seconds
  sqs_managed_sse_enabled    = true

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.outbound_dead_letters.arn
    maxReceiveCount     = var.outbound_max_receives
  })
}

resource "aws_sqs_queue" "outbound_dead_letters" {
  name                      = "parley-${var.stage}-outbound-dlq"
  message_retention_seconds = local.message_retention_seconds
  sqs_managed_sse_enabled   = true
}

# Queued jobs (exports) -> the job runner. Retries of a failed attempt are
# new messages the reactor sends after the job's backoff; a message the
# runner could not even record an outcome for comes back, then dead-letters.
resource "aws_sqs_queue" "jobs" {
  name = "parley-${var.stage}-jobs"
  # Six times the job runner's timeout, as AWS advises for SQS event sources.
  visibility_timeout_seconds = 5400
  message_retention_seconds  = local.message_retention_seconds
  sqs_managed_sse_enabled    = true

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.jobs_dead_letters.arn
    maxReceiveCount     = var.job_max_receives
  })
}

resource "aws_sqs_queue" "jobs_dead_letters" {
  name                      = "parley-${var.stage}-jobs-dlq"
  message_retention_seconds = local.message_retention_seconds
  sqs_managed_sse_enabled   = true
}
