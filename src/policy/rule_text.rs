//! The Vietnamese texts of the rules whose refusals do not come from a policy file: one home
//! for the SMTP reply, `policy explain` and the report's rule names.

pub const CLASSIFICATION: &str = "Không đọc được độ khẩn, độ mật, số hoặc ngày ký của văn bản";
pub const NUMBER_FORM: &str = "Số văn bản không đúng thể thức";
pub const ATTACHMENT_REQUIRED: &str = "Văn bản có số phải có tệp đính kèm";
pub const DISPATCH_LATE: &str = "Văn bản đã quá hạn phát hành";
pub const SENDER_DOMAIN: &str = "Tên miền người gửi không được phép";
pub const RECIPIENT_DOMAIN: &str = "Tên miền người nhận không được phép theo chính sách";
