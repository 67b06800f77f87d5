output "events_table_name" {
  value = aws_dynamodb_table.events.name
}

output "events_table_arn" {
  value = aws_dynamodb_table.events.arn
}

output "events_table_stream_arn" {
  value = aws_dynamodb_table.events.stream_arn
}

output "read_models_table_name" {
  value = aws_dynamodb_table.read_models.name
}

output "read_models_table_arn" {
  value = aws_dynamodb_table.read_models.arn
}

output "idempotency_table_name" {
  value = aws_dynamodb_table.idempotency.name
}

output "idempotency_table_arn" {
  value = aws_dynamodb_table.idempotency.arn
}

output "keys_table_name" {
  value = aws_dynamodb_table.keys.name
}

output "keys_table_arn" {
  value = aws_dynamodb_table.keys.arn
}

output "blob_bucket_name" {
  value = aws_s3_bucket.blobs.id
}

output "blob_bucket_arn" {
  value = aws_s3_bucket.blobs.arn
}

# The template's !Ref of the key: its id, which the SDK accepts as KeyId.
output "data_key_id" {
  value = aws_kms_key.data.key_id
}

output "data_key_arn" {
  value = aws_kms_key.data.arn
}
