# The template's !Ref of a queue: its URL.
output "outbound_queue_url" {
  value = aws_sqs_queue.outbound.url
}

output "outbound_queue_arn" {
  value = aws_sqs_queue.outbound.arn
}

output "outbound_dead_letter_queue_name" {
  value = aws_sqs_queue.outbound_dead_letters.name
}

output "jobs_queue_url" {
  value = aws_sqs_queue.jobs.url
}

output "jobs_queue_arn" {
  value = aws_sqs_queue.jobs.arn
}

output "jobs_dead_letter_queue_name" {
  value = aws_sqs_queue.jobs_dead_letters.name
}

output "event_bus_name" {
  value = aws_cloudwatch_event_bus.this.name
}

output "event_bus_arn" {
  value = aws_cloudwatch_event_bus.this.arn
}
