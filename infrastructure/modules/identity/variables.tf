variable "stage" {
  description = "Deployment stage; every resource name carries it."
  type        = string
}
