terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }

  # Bucket, key, region and lock table come from backend.hcl (see backend.hcl.example).
  backend "s3" {}
}
