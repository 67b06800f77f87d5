data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  name               = "${var.function_name}-role"
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

# What the function's code does: the template's Policies, one for one.
data "aws_iam_policy_document" "grants" {
  dynamic "statement" {
    for_each = var.statements
    content {
      effect    = "Allow"
      actions   = statement.value.actions
      resources = statement.value.resources

      dynamic "condition" {
        for_each = statement.value.conditions
        content {
          test     = condition.value.test
          variable = condition.value.variable
          values   = condition.value.values
        }
      }
    }
  }
}

resource "aws_iam_role_policy" "grants" {
  name   = "grants"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.grants.json
}

# What SAM adds on its own (the basic execution, X-Ray and event source
# managed policies), scoped here to this function's log group, stream and queue.
data "aws_iam_policy_document" "runtime" {
  statement {
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }

  # Tracing is active; X-Ray has no resource-level permissions for these.
  statement {
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets"]
    resources = ["*"]
  }

  dynamic "statement" {
    for_each = var.stream_source == null ? [] : [var.stream_source.arn]
    content {
      actions   = ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"]
      resources = [statement.value]
    }
  }

  # ListStreams has no resource-level permissions.
  dynamic "statement" {
    for_each = var.stream_source == null ? [] : [var.stream_source.arn]
    content {
      actions   = ["dynamodb:ListStreams"]
      resources = ["*"]
    }
  }

  dynamic "statement" {
    for_each = var.queue_source == null ? [] : [var.queue_source.arn]
    content {
      actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_role_policy" "runtime" {
  name   = "runtime"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.runtime.json
}
