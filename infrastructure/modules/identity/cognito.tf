# Identity (SPEC 5.1): users sign in with their email; the tenant and role
# are attributes the tokens carry. The password policy matches the local one.
resource "aws_cognito_user_pool" "this" {
  name                     = "parley-${var.stage}"
  username_attributes      = ["email"]
  auto_verified_attributes = ["email"]

  username_configuration {
    case_sensitive = false
  }

  password_policy {
    minimum_length                   = 12
    require_lowercase                = true
    require_uppercase                = true
    require_numbers                  = true
    require_symbols                  = false
    temporary_password_validity_days = 7
  }

  account_recovery_setting {
    recovery_mechanism {
      name     = "verified_email"
      priority = 1
    }
  }

  user_attribute_update_settings {
    attributes_require_verification_before_update = ["email"]
  }

  schema {
    name                = "email"
    attribute_data_type = "String"
    required            = true
    mutable             = true

    # Cognito's own bounds for email; stating them keeps plans free of a
    # perpetual diff on this attribute.
    string_attribute_constraints {
      min_length = "0"
      max_length = "2048"
    }
  }

  schema {
    name                = "tenant_id"
    attribute_data_type = "String"
    mutable             = true

    string_attribute_constraints {
      min_length = "1"
      max_length = "64"
    }
  }

  schema {
    name                = "role"
    attribute_data_type = "String"
    mutable             = true

    string_attribute_constraints {
      min_length = "4"
      max_length = "6"
    }
  }

  # The template retains the pool (and so every account) when the stack goes away.
  lifecycle {
    prevent_destroy = true
  }
}

resource "aws_cognito_user_pool_client" "api" {
  name                          = "parley-${var.stage}-api"
  user_pool_id                  = aws_cognito_user_pool.this.id
  generate_secret               = false
  explicit_auth_flows           = ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
  prevent_user_existence_errors = "ENABLED"
  enable_token_revocation       = true
  access_token_validity         = 15
  id_token_validity             = 15
  refresh_token_validity        = 30

  token_validity_units {
    access_token  = "minutes"
    id_token      = "minutes"
    refresh_token = "days"
  }

  # Users may read their tenant and role but only the API changes them.
  read_attributes  = ["email", "email_verified", "custom:tenant_id", "custom:role"]
  write_attributes = ["email"]
}
