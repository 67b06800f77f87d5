data "aws_region" "current" {}

locals {
  is_prod = var.stage == "prod"
  prefix  = "parley-${var.stage}"

  # The template's Globals: every function finds its stage's resources here.
  function_environment = {
    PARLEY_STAGE                = var.stage
    PARLEY_STORE                = "dynamodb"
    PARLEY_EVENTS_TABLE         = module.data.events_table_name
    PARLEY_READ_MODELS_TABLE    = module.data.read_models_table_name
    PARLEY_IDEMPOTENCY_TABLE    = module.data.idempotency_table_name
    PARLEY_OUTBOUND_QUEUE_URL   = module.messaging.outbound_queue_url
    PARLEY_JOBS_QUEUE_URL       = module.messaging.jobs_queue_url
    PARLEY_EVENT_BUS            = module.messaging.event_bus_name
    PARLEY_BLOB_BUCKET          = module.data.blob_bucket_name
    PARLEY_DATA_KEY_ID          = module.data.data_key_id
    PARLEY_KEYS_TABLE           = module.data.keys_table_name
    PARLEY_USER_POOL_ID         = module.identity.user_pool_id
    PARLEY_USER_POOL_CLIENT_ID  = module.identity.user_pool_client_id
    PARLEY_MAIL_FROM            = var.mail_from
    PARLEY_WHATSAPP_API_BASE    = var.whatsapp_api_base
    PARLEY_WHATSAPP_API_VERSION = var.whatsapp_api_version
    PARLEY_LOG_FORMAT           = "json"
    RUST_LOG                    = "info"
  }
}
