# Integration events; subscribers add their own rules on this bus.
resource "aws_cloudwatch_event_bus" "this" {
  name = "parley-${var.stage}"
}
