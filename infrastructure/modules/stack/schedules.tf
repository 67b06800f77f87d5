# The template's ScheduleV2 events, keyed by the function's PARLEY_HANDLER.
module "schedules" {
  source = "../schedules"

  stage = var.stage
  schedules = {
    "window-closer" = {
      function_arn           = module.window_closer.function_arn
      expression             = var.window_closer_schedule
      maximum_retry_attempts = 2
    }
    "invoicer" = {
      function_arn           = module.invoicer.function_arn
      expression             = var.invoicer_schedule
      maximum_retry_attempts = 5
    }
    "dunning" = {
      function_arn           = module.dunning.function_arn
      expression             = var.dunning_schedule
      maximum_retry_attempts = 2
    }
    "usage-notices" = {
      function_arn           = module.usage_notices.function_arn
      expression             = var.usage_notices_schedule
      maximum_retry_attempts = 2
    }
    "archiver" = {
      function_arn           = module.archiver.function_arn
      expression             = var.archiver_schedule
      maximum_retry_attempts = 2
    }
    "message-cleanup" = {
      function_arn           = module.message_cleanup.function_arn
      expression             = var.message_cleanup_schedule
      maximum_retry_attempts = 2
    }
    "template-poller" = {
      function_arn           = module.template_poller.function_arn
      expression             = var.template_poller_schedule
      maximum_retry_attempts = 2
    }
  }
}
