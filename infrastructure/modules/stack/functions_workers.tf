# Workers: the parley-worker binary; stream, queue and schedule handlers.
# Their schedules are in schedules.tf.

# Events table stream -> read models. Each item keeps the last stream
# version applied, so redelivered records change nothing.
module "projector" {
  source = "../function"

  function_name      = "${local.prefix}-projector"
  description        = "Parley read-model projector (events stream)"
  binary             = "parley-worker"
  timeout            = 60
  artifacts_dir      = var.artifacts_dir
  log_retention_days = var.log_retention_days
  shared_environment = local.function_environment
  environment = {
    PARLEY_HANDLER = "projector"
  }

  statements = [
    # Counters and their per-message markers are written in one TransactWriteItems;
    # a message's search postings in BatchWriteItem calls.
    {
      actions   = ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem", "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:TransactWriteItems", "dynamodb:BatchWriteItem"]
      resources = [module.data.read_models_table_arn, "${module.data.read_models_table_arn}/index/*"]
    },
    {
      actions   = ["dynamodb:Query"]
      resources = [module.data.events_table_arn]
    },
    # Template sends are counted by name and messages are indexed for
    # search by their words: both are sealed in the events. A tenant's
    # first indexed message creates its search key, sealed with a data key.
    local.grant.keys_table,
    local.grant.data_key,
  ]

  stream_source = {
    arn                                = module.data.events_table_stream_arn
    starting_position                  = "TRIM_HORIZON"
    batch_size                         = 100
    maximum_batching_window_in_seconds = 1
    parallelization_factor             = 4
    maximum_retry_attempts             = 100
    function_response_types            = ["ReportBatchItemFailures"]
  }
}

# Events table stream -> outbound queue (MessageQueued), jobs queue (queued
# and retried jobs) and integration events on the bus. A second reader of the
# stream; AWS advises at most two per shard, so every other reaction joins
# this function.
module "reactor" {
  source = "../function"

  function_name      = "${local.prefix}-reactor"
  description        = "Parley reactor (events stream -> outbound queue, EventBridge)"
  binary             = "parley-worker"
  timeout            = 60
  artifacts_dir      = var.artifacts_dir
  log_retention_days = var.log_retention_days
  shared_environment = local.function_environment
  environment = {
    PARLEY_HANDLER = "reactor"
  }

  statements = [
    {
      actions   = ["sqs:SendMessage"]
      resources = [module.messaging.outbound_queue_arn, module.messaging.jobs_queue_arn]
    },
    {
      actions   = ["events:PutEvents"]
      resources = [module.messaging.event_bus_arn]
    },
  ]

  stream_source = {
    arn                                = module.data.events_table_stream_arn
    starting_position                  = "TRIM_HORIZON"
    batch_size                         = 100
    maximum_batching_window_in_seconds = 1
    maximum_retry_attempts             = 100
    function_response_types            = ["ReportBatchItemFailures"]
  }
}

# Outbound queue -> WhatsApp Cloud API. Claims each attempt on the message
# stream before the call, so nothing is sent twice.
module "sender" {
  source = "../function"

  function_name      = "${local.prefix}-sender"
  description        = "Parley outbound sender (SQS -> WhatsApp)"
  binary             = "parley-worker"
  timeout            = 30
  artifacts_dir      = var.artifacts_dir
  log_retention_days = var.log_retention_days
  shared_environment = local.function_environment
  environment = {
    PARLEY_HANDLER = "sender"
  }

  statements = [
    local.grant.event_store,
    {
      actions   = ["sqs:SendMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"]
      resources = [module.messaging.outbound_queue_arn]
    },
    # The rate limiter's token buckets (one item per number and per pair).
    {
      actions   = ["dynamodb:GetItem", "dynamodb:PutItem"]
      resources = [module.data.idempotency_table_arn]
    },
    {
      actions   = ["kms:Decrypt"]
      resources = [module.data.data_key_arn]
    },
    # Data keys: read (wrapped) to open personal data.
    {
      actions   = ["dynamodb:GetItem"]
      resources = [module.data.keys_table_arn]
    },
  ]

  queue_source = {
    arn                                = module.messaging.outbound_queue_arn
    batch_size                         = 10
    maximum_batching_window_in_seconds = 0
    function_response_types            = ["ReportBatchItemFailures"]
  }
}

# Schedule -> ConversationWindowExpired for every window that closed (SPEC 4.1).
module "window_closer" {
  source = "../function"

  function_name      = "${local.prefix}-window-closer"
  description        = "Parley 24h window closer"
  binary             = "parley-worker"
  timeout            = 300
  artifacts_dir      = var.artifacts_dir
  log_retention_days = var.log_retention_days
  shared_environment = local.function_environment
  environment = {
    PARLEY_HANDLER = "window-closer"
  }

  statements = [
    local.grant.event_store,
    {
      actions   = ["dynamodb:Query"]
      resources = [module.data.read_models_table_arn, "${module.data.read_models_table_arn}/index/*"]
    },
  ]
}

# Jobs queue -> exports. One job per invocation: an export pages through a
# tenant's messages and writes the CSV to S3.
module "job_runner" {
  source = "../function"

  function_name      = "${local.prefix}-job-runner"
  description        = "Parley job runner (SQS -> exports, archive runs)"
  binary             = "parley-worker"
  timeout            = 900
  memory_size        = 1024
  artifacts_dir      = var.artifacts_dir
  log_retention_days = var.log_retention_days
  shared_environment = local.function_environment
  environment = {
    PARLEY_HANDLER = "job-runner"
  }

  statements = [
    local.grant.event_store,
    local.grant.read_models,
    # Restored messages are indexed for search again, which may
    # create the tenant's search key.
    local.grant.keys_table,
    local.grant.data_key,
    {
      actions   = ["s3:PutObject", "s3:GetObject"]
      resources = ["${module.data.blob_bucket_arn}/exports/*", "${module.data.blob_bucket_arn}/archive/*"]
    },
    # Message exports list the tenant's archived months.
    {
      actions    = ["s3:ListBucket"]
      resources  = [module.data.blob_bucket_arn]
      conditions = [{ test = "StringLike", variable = "s3:prefix", values = ["archive/*"] }]
    },
    # Archive runs: find dormant streams, mark their items to expire,
    # drop (or rebuild on restore) their message rows and search postings.
    {
      actions   = ["dynamodb:Scan"]
      resources = [module.data.events_table_arn]
    },
    {
      actions   = ["dynamodb:DeleteItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:TransactWriteItems", "dynamodb:BatchWriteItem"]
      resources = [module.data.read_models_table_arn]
    },
    {
      actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"]
      resources = [module.messaging.jobs_queue_arn]
    },
    local.grant.send_mail,
  ]

  queue_source = {
    arn                     = module.messaging.jobs_queue_arn
    batch_size              = 1
    function_response_types = ["ReportBatchItemFailures"]
  }
}

# Schedule (1st of the month) -> last month's invoices: PDF to S3, the
# InvoiceIssued event, the mail with its link. Idempotent per tenant and month.
module "invoicer" {
  source = "../function"

  function_name      = "${local.prefix}-invoicer"
  description        = "Parley monthly invoicer"
  binary             = "parley-worker"
  timeout            = 900
  artifacts_dir      = var.artifacts_dir
  log_retention_days = var.log_retention_days
  shared_environment = local.function_environment
  environment = {
    PARLEY_HANDLER               = "invoicer"
    PARLEY_STRIPE_SECRET_KEY     = var.stripe_secret_key
    PARLEY_STRIPE_WEBHOOK_SECRET = var.stripe_webhook_secret
  }

  statements = [
    local.grant.event_store,
    local.grant.read_models,
    local.grant.data_key,
    # Data keys: read (wrapped) to open personal data, created on first seal of a scope.
    local.grant.keys_table,
    {
      actions   = ["s3:PutObject", "s3:GetObject"]
      resources = ["${module.data.blob_bucket_arn}/invoices/*"]
    },
    local.grant.send_mail,
  ]
}

# Schedule (daily) -> reminders of failed payments, each on its day.
module "dunning" {
  source = "../function"

  function_name      = "${local.prefix}-dunning"
  description        = "Parley dunning (failed payment reminders)"
  binary             = "parley-worker"
  timeout            = 300
  artifacts_dir      = var.artifacts_dir
  log_retention_days = var.log_retention_days
  shared_environment = local.function_environment
  environment = {
    PARLEY_HANDLER               = "dunning"
    PARLEY_STRIPE_SECRET_KEY     = var.stripe_secret_key
    PARLEY_STRIPE_WEBHOOK_SECRET = var.stripe_webhook_secret
  }

  statements = [
    local.grant.event_store,
    local.grant.read_models,
    local.grant.send_mail,
  ]
}

# Schedule (hourly) -> notices of usage at 80 % and 100 % of the plan's limit.
module "usage_notices" {
  source = "../function"

  function_name      = "${local.prefix}-usage-notices"
  description        = "Parley usage limit notices"
  binary             = "parley-worker"
  timeout            = 300
  artifacts_dir      = var.artifacts_dir
  log_retention_days = var.log_retention_days
  shared_environment = local.function_environment
  environment = {
    PARLEY_HANDLER = "usage-notices"
  }

  statements = [
    local.grant.event_store,
    local.grant.read_models,
    local.grant.send_mail,
  ]
}

# Schedule (daily) -> an archive run job per tenant; the job runner archives.
module "archiver" {
  source = "../function"

  function_name      = "${local.prefix}-archiver"
  description        = "Parley archiver (queues archive runs)"
  binary             = "parley-worker"
  timeout            = 300
  artifacts_dir      = var.artifacts_dir
  log_retention_days = var.log_retention_days
  shared_environment = local.function_environment
  environment = {
    PARLEY_HANDLER = "archiver"
  }

  statements = [
    local.grant.event_store,
    local.grant.read_models,
  ]
}

# Schedule (every 15 minutes) -> queued messages past their time to live are failed.
module "message_cleanup" {
  source = "../function"

  function_name      = "${local.prefix}-message-cleanup"
  description        = "Parley expired queued messages"
  binary             = "parley-worker"
  timeout            = 300
  artifacts_dir      = var.artifacts_dir
  log_retention_days = var.log_retention_days
  shared_environment = local.function_environment
  environment = {
    PARLEY_HANDLER = "message-cleanup"
  }

  statements = [
    local.grant.event_store,
    local.grant.read_models,
    local.grant.keys_table,
    local.grant.data_key,
  ]
}

# Schedule (hourly) -> template statuses from the Graph API, for missed webhooks.
module "template_poller" {
  source = "../function"

  function_name      = "${local.prefix}-template-poller"
  description        = "Parley template status poller"
  binary             = "parley-worker"
  timeout            = 300
  artifacts_dir      = var.artifacts_dir
  log_retention_days = var.log_retention_days
  shared_environment = local.function_environment
  environment = {
    PARLEY_HANDLER = "template-poller"
  }

  statements = [
    local.grant.event_store,
    local.grant.read_models,
    local.grant.keys_table,
    local.grant.data_key,
  ]
}
