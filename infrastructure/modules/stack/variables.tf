# The template's Parameters, with the same defaults and constraints.

variable "stage" {
  description = "Deployment stage; every resource name carries it."
  type        = string
  default     = "dev"

  validation {
    condition     = contains(["dev", "staging", "prod"], var.stage)
    error_message = "stage must be dev, staging or prod."
  }
}

variable "whatsapp_api_base" {
  description = "Base URL of the WhatsApp Cloud API."
  type        = string
  default     = "https://graph.facebook.com"
}

variable "whatsapp_api_version" {
  type    = string
  default = "v26.0"

  validation {
    condition     = can(regex("^v[0-9]+\\.[0-9]+$", var.whatsapp_api_version))
    error_message = "whatsapp_api_version looks like v26.0."
  }
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
  description = "Verified SES identity that sends Parley's mail, e.g. \"Parley <no-reply@example.com>\"."
  type        = string
  default     = "Parley <no-reply@example.com>"
}

variable "log_retention_days" {
  type    = number
  default = 30

  validation {
    condition     = contains([7, 14, 30, 60, 90, 180, 365], var.log_retention_days)
    error_message = "log_retention_days must be one of 7, 14, 30, 60, 90, 180, 365."
  }
}

variable "outbound_max_receives" {
  description = "Deliveries of an outbound job before it moves to the dead-letter queue."
  type        = number
  default     = 10

  validation {
    condition     = var.outbound_max_receives >= 2 && var.outbound_max_receives <= 100
    error_message = "outbound_max_receives must be between 2 and 100."
  }
}

variable "window_closer_schedule" {
  description = "How often expired 24h windows are closed (SPEC 4.1)."
  type        = string
  default     = "rate(5 minutes)"
}

variable "invoicer_schedule" {
  description = "When last month's invoices are issued (SPEC 3.7); a re-run issues none twice."
  type        = string
  default     = "cron(0 2 1 * ? *)"
}

variable "dunning_schedule" {
  description = "When reminders of failed payments go out (daily; each reminder on its day)."
  type        = string
  default     = "cron(0 8 * * ? *)"
}

variable "usage_notices_schedule" {
  description = "How often usage is checked against plan limits (80 % and 100 % notices, once each per month)."
  type        = string
  default     = "rate(1 hour)"
}

variable "archiver_schedule" {
  description = "When each tenant's archive run is queued (daily; the job runner moves records past retention to S3, SPEC 6.3)."
  type        = string
  default     = "cron(0 3 * * ? *)"
}

variable "message_cleanup_schedule" {
  description = "How often queued messages past their time to live are failed."
  type        = string
  default     = "rate(15 minutes)"
}

variable "template_poller_schedule" {
  description = "How often template statuses are asked of WhatsApp (webhooks may be missed)."
  type        = string
  default     = "rate(1 hour)"
}

variable "job_max_receives" {
  description = "Deliveries of a job message whose runner kept failing before it moves to the dead-letter queue."
  type        = number
  default     = 5

  validation {
    condition     = var.job_max_receives >= 2 && var.job_max_receives <= 20
    error_message = "job_max_receives must be between 2 and 20."
  }
}

variable "alarm_topic_arn" {
  description = "SNS topic that receives alarm notifications; empty for none."
  type        = string
  default     = ""
}

# Not in the template, where SAM packages CodeUri itself.
variable "artifacts_dir" {
  description = "Where scripts/build.sh leaves the Lambda zips: <repository>/target/lambda."
  type        = string
}
