module "alarms" {
  source = "../alarms"

  stage                           = var.stage
  alarm_topic_arn                 = var.alarm_topic_arn
  outbound_dead_letter_queue_name = module.messaging.outbound_dead_letter_queue_name
  jobs_dead_letter_queue_name     = module.messaging.jobs_dead_letter_queue_name
  projector_function_name         = module.projector.function_name
  reactor_function_name           = module.reactor.function_name
}
