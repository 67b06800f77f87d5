# IAM statements several functions share, named by what their code does.
# Each function lists these beside its own in `statements`.
locals {
  grant = {
    # Load and append events (optimistic concurrency; several streams in one transaction).
    event_store = {
      actions   = ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem", "dynamodb:PutItem", "dynamodb:TransactWriteItems"]
      resources = [module.data.events_table_arn]
    }
    # Read the projected views and their indexes.
    read_models = {
      actions   = ["dynamodb:GetItem", "dynamodb:Query"]
      resources = [module.data.read_models_table_arn, "${module.data.read_models_table_arn}/index/*"]
    }
    # Unwrap and create data keys with the stage's KMS key.
    data_key = {
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [module.data.data_key_arn]
    }
    # The wrapped data keys: read to open sealed values, created on a scope's first seal.
    keys_table = {
      actions   = ["dynamodb:GetItem", "dynamodb:PutItem"]
      resources = [module.data.keys_table_arn]
    }
    # The sending identity (mail_from) is verified outside the stack, so its ARN is not known here.
    send_mail = {
      actions   = ["ses:SendEmail"]
      resources = ["*"]
    }
  }
}
