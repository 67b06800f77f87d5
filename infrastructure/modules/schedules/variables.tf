variable "stage" {
  description = "Deployment stage; every resource name carries it."
  type        = string
}

variable "schedules" {
  description = "Schedules by function key: the function to invoke, when, and how often EventBridge Scheduler retries a failed invocation."
  type = map(object({
    function_arn           = string
    expression             = string
    maximum_retry_attempts = number
  }))
}
