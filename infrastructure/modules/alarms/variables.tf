variable "stage" {
  description = "Deployment stage; every resource name carries it."
  type        = string
}

variable "alarm_topic_arn" {
  description = "SNS topic that receives alarm notifications; empty for none."
  type        = string
  default     = ""
}

variable "outbound_dead_letter_queue_name" {
  type = string
}

variable "jobs_dead_letter_queue_name" {
  type = string
}

variable "projector_function_name" {
  type = string
}

variable "reactor_function_name" {
  type = string
}
