variable "stage" {
  description = "Deployment stage: names the API and is its stage (the URL's first path segment)."
  type        = string
}

variable "log_retention_days" {
  type = number
}

variable "jwt_issuer" {
  description = "Issuer of the Cognito tokens the authorizer accepts."
  type        = string
}

variable "jwt_audience" {
  description = "App client ids the tokens must be issued to."
  type        = list(string)
}

variable "functions" {
  description = "Functions the routes reach, by key: their name and invoke ARN."
  type = map(object({
    function_name = string
    invoke_arn    = string
  }))
}

variable "routes" {
  description = "Routes by key: method, path, the function key, and whether the Cognito JWT is required."
  type = map(object({
    method     = string
    path       = string
    function   = string
    authorized = bool
  }))
}
