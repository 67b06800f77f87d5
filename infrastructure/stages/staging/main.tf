module "parley" {
  source = "../../modules/stack"

  stage              = "staging"
  log_retention_days = 30
  artifacts_dir      = "${path.root}/../../../target/lambda"

  stripe_secret_key     = var.stripe_secret_key
  stripe_webhook_secret = var.stripe_webhook_secret
  mail_from             = var.mail_from
  alarm_topic_arn       = var.alarm_topic_arn
}
