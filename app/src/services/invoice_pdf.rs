//! Renders an invoice as a one-page PDF (A4) with the base-14 Helvetica
//! font, which every PDF reader has, so nothing is embedded.

use parley_domain::billing::InvoiceIssued;
use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str};

/// Lines that fit on the page below the header; the rest are summed up.
const MAX_LINES: usize = 40;

/// The base-14 fonts use a Latin encoding: anything else is shown as `?`.
fn latin(text: &str) -> Vec<u8> {
    text.chars().map(|c| if c.is_ascii() && !c.is_ascii_control() { c as u8 } else { b'?' }).collect()
}

/// `12345` minor units as `123.45`.
pub fn money(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", minor.abs() / 100, minor.abs() % 100)
}

pub fn render(invoice: &InvoiceIssued, tenant_id: &str) -> Vec<u8> {
    let (catalog, tree, page, font, bold, content_id) =
        (Ref::new(1), Ref::new(2), Ref::new(3), Ref::new(4), Ref::new(5), Ref::new(6));
    let mut pdf = Pdf::new();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree).kids([page]).count(1);
    let mut p = pdf.page(page);
    p.media_box(Rect::new(0.0, 0.0, 595.0, 842.0)).parent(tree).contents(content_id);
    {
        let mut resources = p.resources();
        let mut fonts = resources.fonts();
        fonts.pair(Name(b"F1"), font);
        fonts.pair(Name(b"F2"), bold);
    }
    p.finish();
    pdf.type1_font(font).base_font(Name(b"Helvetica"));
    pdf.type1_font(bold).base_font(Name(b"Helvetica-Bold"));

    let mut c = Content::new();
    let mut y = 790.0;
    let line = |c: &mut Content, x: f32, y: f32, size: f32, bold: bool, text: &str| {
        c.begin_text();
        c.set_font(Name(if bold { b"F2" } else { b"F1" }), size);
        c.next_line(x, y);
        c.show(Str(&latin(text)));
        c.end_text();
    };
    line(&mut c, 50.0, y, 20.0, true, &format!("Invoice {}", invoice.number));
    y -= 28.0;
    let header = [
        format!("Billed to: {tenant_id}{}", invoice.bill_to.as_deref().map(|e| format!(" <{e}>")).unwrap_or_default()),
        format!("Period: {}    Plan: {}", invoice.month, invoice.plan),
        format!("Issued: {}    Due: {}", invoice.at.format("%Y-%m-%d"), invoice.due_at.format("%Y-%m-%d")),
        invoice.tax_id.as_deref().map(|t| format!("Tax ID: {t}")).unwrap_or_default(),
    ];
    for h in header.iter().filter(|h| !h.is_empty()) {
        line(&mut c, 50.0, y, 10.0, false, h);
        y -= 14.0;
    }
    y -= 14.0;
    line(&mut c, 50.0, y, 10.0, true, "Description");
    line(&mut c, 380.0, y, 10.0, true, "Quantity");
    line(&mut c, 470.0, y, 10.0, true, &format!("Amount ({})", invoice.currency));
    y -= 16.0;
    for l in invoice.lines.iter().take(MAX_LINES) {
        line(&mut c, 50.0, y, 10.0, false, &l.description);
        line(&mut c, 380.0, y, 10.0, false, &l.quantity.to_string());
        line(&mut c, 470.0, y, 10.0, false, &money(l.amount));
        y -= 14.0;
    }
    if invoice.lines.len() > MAX_LINES {
        let rest: i64 = invoice.lines[MAX_LINES..].iter().map(|l| l.amount).sum();
        line(&mut c, 50.0, y, 10.0, false, &format!("{} more lines", invoice.lines.len() - MAX_LINES));
        line(&mut c, 470.0, y, 10.0, false, &money(rest));
        y -= 14.0;
    }
    y -= 10.0;
    let vat = format!("VAT ({}.{:02} %)", invoice.vat_rate_bp / 100, invoice.vat_rate_bp % 100);
    for (label, amount, strong) in
        [("Subtotal", invoice.subtotal, false), (vat.as_str(), invoice.vat, false), ("Total", invoice.total, true)]
    {
        line(&mut c, 300.0, y, 11.0, strong, label);
        line(&mut c, 470.0, y, 11.0, strong, &format!("{} {}", money(amount), invoice.currency));
        y -= 16.0;
    }
    pdf.stream(content_id, &c.finish());
    pdf.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_formatted_with_two_decimals() {
        assert_eq!(money(5_650), "56.50");
        assert_eq!(money(7), "0.07");
        assert_eq!(money(-1_234), "-12.34");
    }

    #[test]
    fn a_rendered_invoice_is_a_pdf_holding_its_total() {
        let invoice = InvoiceIssued {
            invoice_id: uuid::Uuid::nil(),
            number: "INV-2026-01-acme".into(),
            month: "2026-01".into(),
            plan: "starter".into(),
            currency: "EUR".into(),
            lines: vec![],
            subtotal: 4_900,
            vat_rate_bp: 1_900,
            vat: 931,
            total: 5_831,
            tax_id: Some("DE123".into()),
            bill_to: Some("billing@acme.test".into()),
            pdf: None,
            due_at: chrono::Utc::now(),
            at: chrono::Utc::now(),
        };
        let bytes = render(&invoice, "acme");
        assert!(bytes.starts_with(b"%PDF-"));
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("58.31 EUR") && text.contains("Tax ID: DE123"));
    }
}
