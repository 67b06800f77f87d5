variable "stage" {
  description = "Deployment stage; every resource name carries it."
  type        = string
}

variable "outbound_max_receives" {
  description = "Deliveries of an outbound job before it moves to the dead-letter queue."
  type        = number
}

variable "job_max_receives" {
  description = "Deliveries of a job message whose runner kept failing before it moves to the dead-letter queue."
  type        = number
}
