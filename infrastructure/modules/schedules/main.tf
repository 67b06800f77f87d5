data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }
  }
}

# One role per schedule, as SAM makes them: each may invoke its own function only.
resource "aws_iam_role" "schedule" {
  for_each = var.schedules

  name               = "parley-${var.stage}-${each.key}-schedule"
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

data "aws_iam_policy_document" "invoke" {
  for_each = var.schedules

  statement {
    actions   = ["lambda:InvokeFunction"]
    resources = [each.value.function_arn]
  }
}

resource "aws_iam_role_policy" "invoke" {
  for_each = var.schedules

  name   = "invoke"
  role   = aws_iam_role.schedule[each.key].id
  policy = data.aws_iam_policy_document.invoke[each.key].json
}

resource "aws_scheduler_schedule" "this" {
  for_each = var.schedules

  name                = "parley-${var.stage}-${each.key}"
  group_name          = "default"
  schedule_expression = each.value.expression

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = each.value.function_arn
    role_arn = aws_iam_role.schedule[each.key].arn

    retry_policy {
      maximum_retry_attempts = each.value.maximum_retry_attempts
    }
  }
}
