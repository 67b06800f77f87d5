module "data" {
  source = "../data"

  stage               = var.stage
  deletion_protection = local.is_prod
}

module "messaging" {
  source = "../messaging"

  stage                 = var.stage
  outbound_max_receives = var.outbound_max_receives
  job_max_receives      = var.job_max_receives
}

module "identity" {
  source = "../identity"

  stage = var.stage
}
