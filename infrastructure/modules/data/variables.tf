variable "stage" {
  description = "Deployment stage; every resource name carries it."
  type        = string
}

variable "deletion_protection" {
  description = "Whether the events table refuses deletion (the template enables it in prod only)."
  type        = bool
}
