# Event streams, Equinox style: one tip item per stream (newest events,
# appended with one conditional update) and immutable calved batches.
# Layout and capacity per operation: events/docs/dynamodb.md.
resource "aws_dynamodb_table" "events" {
  name         = "parley-${var.stage}-events"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "p"
  range_key    = "i"

  attribute {
    name = "p"
    type = "S"
  }
  attribute {
    name = "i"
    type = "N"
  }

  # A tip's new image alone says which events a write added (attribute w).
  stream_enabled   = true
  stream_view_type = "NEW_IMAGE"

  # Archived streams (SPEC 6.3) carry x: DynamoDB expires their items.
  ttl {
    attribute_name = "x"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled = true
  }

  deletion_protection_enabled = var.deletion_protection

  # The template retains this table when the stack goes away.
  lifecycle {
    prevent_destroy = true
  }
}

# Read models: one table, single-table design (SPEC 6.2).
resource "aws_dynamodb_table" "read_models" {
  name         = "parley-${var.stage}-read-models"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"
  range_key    = "sk"

  dynamic "attribute" {
    for_each = ["pk", "sk", "g1pk", "g1sk", "g2pk", "g2sk", "g3pk", "g3sk", "g4pk", "g4sk"]
    content {
      name = attribute.value
      type = "S"
    }
  }

  # gsi1 messages by conversation; gsi2 a tenant's messages, conversations by
  # activity and numbers; gsi3 numbers by verify-token hash; gsi4 open windows
  # by closing time (sparse). Layout: aws/src/dynamodb/read_models.
  global_secondary_index {
    name            = "gsi1"
    hash_key        = "g1pk"
    range_key       = "g1sk"
    projection_type = "ALL"
  }
  global_secondary_index {
    name            = "gsi2"
    hash_key        = "g2pk"
    range_key       = "g2sk"
    projection_type = "ALL"
  }
  global_secondary_index {
    name            = "gsi3"
    hash_key        = "g3pk"
    range_key       = "g3sk"
    projection_type = "ALL"
  }
  global_secondary_index {
    name               = "gsi4"
    hash_key           = "g4pk"
    range_key          = "g4sk"
    projection_type    = "INCLUDE"
    non_key_attributes = ["tenant_id", "id", "wa_id"]
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled = true
  }

  ttl {
    attribute_name = "ttl"
    enabled        = true
  }

  lifecycle {
    prevent_destroy = true
  }
}

# Idempotency records of commands and side effects (in progress, completed, expiry).
resource "aws_dynamodb_table" "idempotency" {
  name         = "parley-${var.stage}-idempotency"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "id"

  attribute {
    name = "id"
    type = "S"
  }

  server_side_encryption {
    enabled = true
  }

  ttl {
    attribute_name = "expiration"
    enabled        = true
  }
}

# Data keys per (tenant, contact), kept only wrapped by the data key (SPEC 6.4).
# Deleting a scope's wrapped key is the crypto-shredding of GDPR erasure.
resource "aws_dynamodb_table" "keys" {
  name         = "parley-${var.stage}-keys"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"

  attribute {
    name = "pk"
    type = "S"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled = true
  }

  lifecycle {
    prevent_destroy = true
  }
}
