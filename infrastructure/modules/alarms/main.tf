locals {
  alarm_actions = var.alarm_topic_arn == "" ? [] : [var.alarm_topic_arn]

  # A message in a dead-letter queue means its handler kept failing.
  dead_letter_alarms = {
    "outbound-dead-letters" = {
      description = "Outbound jobs reached the dead-letter queue."
      queue_name  = var.outbound_dead_letter_queue_name
    }
    "jobs-dead-letters" = {
      description = "Job messages reached the dead-letter queue (their runner kept failing)."
      queue_name  = var.jobs_dead_letter_queue_name
    }
  }

  # A stream consumer minutes behind means its batches keep failing or it is too slow.
  iterator_age_alarms = {
    "projector-iterator-age" = {
      description   = "Read models trail the event stream by more than a minute."
      function_name = var.projector_function_name
    }
    "reactor-iterator-age" = {
      description   = "Queued messages and integration events trail the event stream by more than a minute."
      function_name = var.reactor_function_name
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "dead_letters" {
  for_each = local.dead_letter_alarms

  alarm_name          = "parley-${var.stage}-${each.key}"
  alarm_description   = each.value.description
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = each.value.queue_name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "iterator_age" {
  for_each = local.iterator_age_alarms

  alarm_name          = "parley-${var.stage}-${each.key}"
  alarm_description   = each.value.description
  namespace           = "AWS/Lambda"
  metric_name         = "IteratorAge"
  dimensions          = { FunctionName = each.value.function_name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  threshold           = 60000
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
}
