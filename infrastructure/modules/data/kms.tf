data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

# Wraps the per-(tenant, contact) data keys (SPEC 6.4) and encrypts blobs.
resource "aws_kms_key" "data" {
  description         = "Parley ${var.stage} data key wrapping key"
  enable_key_rotation = true

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountAdministers"
        Effect    = "Allow"
        Principal = { AWS = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
    ]
  })

  lifecycle {
    prevent_destroy = true
  }
}
