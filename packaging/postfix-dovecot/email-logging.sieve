require ["fileinto", "envelope"];
if envelope :localpart :is "to" "queue" {
  fileinto "Public Folders/Email Logging/Queue";
  stop;
}
