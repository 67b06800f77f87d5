variable "function_name" {
  description = "Name of the Lambda function; its role and log group are named after it."
  type        = string
}

variable "description" {
  type    = string
  default = ""
}

variable "binary" {
  description = "Which of the two binaries hosts the function: parley-http or parley-worker."
  type        = string

  validation {
    condition     = contains(["parley-http", "parley-worker"], var.binary)
    error_message = "binary must be parley-http or parley-worker."
  }
}

variable "artifacts_dir" {
  description = "Where scripts/build.sh leaves <binary>/bootstrap.zip (target/lambda)."
  type        = string
}

variable "memory_size" {
  type    = number
  default = 256
}

variable "timeout" {
  type    = number
  default = 15
}

variable "reserved_concurrent_executions" {
  description = "Reserved concurrency; -1 leaves the function unreserved."
  type        = number
  default     = -1
}

variable "shared_environment" {
  description = "Variables every function gets (the template's Globals)."
  type        = map(string)
}

variable "environment" {
  description = "This function's own variables, PARLEY_HANDLER among them."
  type        = map(string)
}

variable "log_retention_days" {
  type = number
}

variable "statements" {
  description = "Allow statements of the function's role: the template's Policies for it."
  type = list(object({
    actions   = list(string)
    resources = list(string)
    conditions = optional(list(object({
      test     = string
      variable = string
      values   = list(string)
    })), [])
  }))
}

variable "stream_source" {
  description = "DynamoDB stream the function reads, if any."
  type = object({
    arn                                = string
    starting_position                  = string
    batch_size                         = number
    maximum_batching_window_in_seconds = number
    parallelization_factor             = optional(number, 1)
    maximum_retry_attempts             = number
    function_response_types            = list(string)
  })
  default = null
}

variable "queue_source" {
  description = "SQS queue the function reads, if any."
  type = object({
    arn                                = string
    batch_size                         = number
    maximum_batching_window_in_seconds = optional(number, 0)
    function_response_types            = list(string)
  })
  default = null
}
