# Plans the whole stack against a mocked AWS provider: every expression,
# count and for_each is evaluated with each stage's settings, without an
# AWS account. `terraform validate` alone checks only the syntax and types.

mock_provider "aws" {
  # IAM policy documents and ARNs must look real for the resources that parse them.
  mock_data "aws_region" {
    defaults = { name = "eu-west-1", region = "eu-west-1" }
  }
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}" }
  }
}

variables {
  # Stand-ins for the zips scripts/build.sh writes; only their hashes are read.
  artifacts_dir = "./tests/artifacts"
}

run "dev" {
  command = plan

  variables {
    stage = "dev"
  }

  assert {
    condition     = module.data.events_table_name == "parley-dev-events"
    error_message = "the events table is named after the stage"
  }
  assert {
    condition     = module.projector.function_name == "parley-dev-projector"
    error_message = "functions are named after the stage"
  }
}

run "prod" {
  command = plan

  variables {
    stage              = "prod"
    log_retention_days = 365
    alarm_topic_arn    = "arn:aws:sns:eu-west-1:123456789012:parley-alarms"
  }

  assert {
    condition     = module.data.events_table_name == "parley-prod-events"
    error_message = "the events table is named after the stage"
  }
}

# The per-function module on its own: environment, event sources, logs.
run "a_stream_function" {
  command = plan

  module {
    source = "../function"
  }

  variables {
    function_name      = "parley-test-projector"
    description        = "projector"
    binary             = "parley-worker"
    memory_size        = 512
    timeout            = 60
    log_retention_days = 14
    shared_environment = { PARLEY_STAGE = "test", PARLEY_HANDLER = "shared" }
    environment        = { PARLEY_HANDLER = "projector" }
    statements         = [{ actions = ["dynamodb:PutItem"], resources = ["arn:aws:dynamodb:eu-west-1:123456789012:table/t"] }]
    stream_source = {
      arn                                = "arn:aws:dynamodb:eu-west-1:123456789012:table/t/stream/2026-01-01T00:00:00.000"
      starting_position                  = "TRIM_HORIZON"
      batch_size                         = 100
      maximum_batching_window_in_seconds = 1
      maximum_retry_attempts             = 10
      function_response_types            = ["ReportBatchItemFailures"]
    }
  }

  assert {
    condition     = aws_lambda_function.this.environment[0].variables == tomap({ PARLEY_STAGE = "test", PARLEY_HANDLER = "projector" })
    error_message = "a function's own variables override the shared ones"
  }
  assert {
    condition     = length(aws_lambda_event_source_mapping.stream) == 1 && length(aws_lambda_event_source_mapping.queue) == 0
    error_message = "a stream function reads its stream and no queue"
  }
  assert {
    condition     = aws_lambda_event_source_mapping.stream[0].batch_size == 100
    error_message = "the stream's batch size is the one given"
  }
  assert {
    condition     = aws_cloudwatch_log_group.this.retention_in_days == 14 && aws_cloudwatch_log_group.this.name == "/aws/lambda/parley-test-projector"
    error_message = "the function logs to its own group with the stage's retention"
  }
  assert {
    condition     = aws_lambda_function.this.architectures == tolist(["arm64"]) && aws_lambda_function.this.runtime == "provided.al2023"
    error_message = "functions run on provided.al2023, arm64"
  }
}

run "a_scheduled_function" {
  command = plan

  module {
    source = "../function"
  }

  variables {
    function_name      = "parley-test-invoicer"
    description        = "invoicer"
    binary             = "parley-worker"
    memory_size        = 256
    timeout            = 300
    log_retention_days = 30
    shared_environment = {}
    environment        = { PARLEY_HANDLER = "invoicer" }
    statements         = [{ actions = ["dynamodb:GetItem"], resources = ["arn:aws:dynamodb:eu-west-1:123456789012:table/t"] }]
  }

  assert {
    condition     = length(aws_lambda_event_source_mapping.stream) == 0 && length(aws_lambda_event_source_mapping.queue) == 0
    error_message = "a scheduled function has no event source mapping"
  }
}

run "alarms_notify_the_topic_when_one_is_given" {
  command = plan

  module {
    source = "../alarms"
  }

  variables {
    stage                           = "prod"
    alarm_topic_arn                 = "arn:aws:sns:eu-west-1:123456789012:parley-alarms"
    outbound_dead_letter_queue_name = "parley-prod-outbound-dlq"
    jobs_dead_letter_queue_name     = "parley-prod-jobs-dlq"
    projector_function_name         = "parley-prod-projector"
    reactor_function_name           = "parley-prod-reactor"
  }

  assert {
    condition     = length(aws_cloudwatch_metric_alarm.dead_letters) + length(aws_cloudwatch_metric_alarm.iterator_age) == 4
    error_message = "two dead-letter queues and two stream consumers are watched"
  }
  assert {
    condition     = aws_cloudwatch_metric_alarm.dead_letters["outbound-dead-letters"].dimensions.QueueName == "parley-prod-outbound-dlq"
    error_message = "the outbound alarm watches the outbound dead-letter queue"
  }
  assert {
    condition     = alltrue([for a in values(aws_cloudwatch_metric_alarm.iterator_age) : a.alarm_actions == toset(["arn:aws:sns:eu-west-1:123456789012:parley-alarms"])])
    error_message = "alarms notify the topic"
  }
}

run "alarms_without_a_topic_only_show_in_the_console" {
  command = plan

  module {
    source = "../alarms"
  }

  variables {
    stage                           = "dev"
    alarm_topic_arn                 = ""
    outbound_dead_letter_queue_name = "parley-dev-outbound-dlq"
    jobs_dead_letter_queue_name     = "parley-dev-jobs-dlq"
    projector_function_name         = "parley-dev-projector"
    reactor_function_name           = "parley-dev-reactor"
  }

  assert {
    condition     = alltrue([for a in values(aws_cloudwatch_metric_alarm.dead_letters) : length(a.alarm_actions) == 0])
    error_message = "no topic, no alarm actions"
  }
}
