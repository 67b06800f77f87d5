variable "region" {
  type    = string
  default = "eu-west-1"
}

variable "stripe_secret_key" {
  description = "Stripe secret key (sk_...); with the webhook secret, invoices are also created in Stripe. Empty for none."
  type        = string
  default     = ""
  sensitive   = true
}

variable "stripe_webhook_secret" {
  description = "Signing secret (whsec_...) of the Stripe webhook endpoint /webhooks/stripe. Empty for none."
  type        = string
  default     = ""
  sensitive   = true
}

variable "mail_from" {
  description = "Verified SES identity that sends Parley's mail."
  type        = string
  default     = "Parley <no-reply@example.com>"
}

variable "alarm_topic_arn" {
  description = "SNS topic that receives alarm notifications; empty for none."
  type        = string
  default     = ""
}
