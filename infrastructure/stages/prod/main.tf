module "parley" {
  source = "../../modules/stack"

  # The stack turns on the events table's deletion protection for prod.
  stage                 = "prod"
  log_retention_days    = 365
  outbound_max_receives = 10
  artifacts_dir         = "${path.root}/../../../target/lambda"

  stripe_secret_key     = var.stripe_secret_key
  stripe_webhook_secret = var.stripe_webhook_secret
  mail_from             = var.mail_from
  alarm_topic_arn       = var.alarm_topic_arn
}
