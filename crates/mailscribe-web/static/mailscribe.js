// Mailscribe's only script: small enhancements for a few pages. Every page
// works without it. It is served from /static/mailscribe.js so that the
// Content-Security-Policy can forbid inline scripts everywhere.
(function () {
  "use strict";

  // Setup: show only the fields of the chosen login method. Without the
  // script both show, and the server uses the ones the method needs.
  var method = document.getElementById("auth");
  var basic = document.getElementById("basic-fields");
  var oauth = document.getElementById("oauth-fields");
  if (method && basic && oauth) {
    var show = function () {
      basic.hidden = method.value !== "basic";
      oauth.hidden = method.value !== "oauth2";
    };
    method.addEventListener("change", show);
    show();
  }

  // Imports: read a chosen CSV file into the text area.
  var file = document.getElementById("csv-file");
  var csv = document.getElementById("csv");
  if (file && csv) {
    file.addEventListener("change", async function (event) {
      var chosen = event.target.files[0];
      if (chosen) { csv.value = await chosen.text(); }
    });
  }

  // Assisted setup: leaving with answers that are not saved to a mailbox
  // yet asks first (as Business Central's assisted setup does). Answers of
  // earlier steps count (the form says so in data-unsaved-initial), and so
  // does anything typed on this one; going on with Next does not ask.
  // `data-unsaved` on the form says which it is, for tests: a headless
  // browser answers such prompts by itself.
  var form = document.getElementById("step-form");
  if (form) {
    var unsaved = false;
    var mark = function (value) { unsaved = value; form.dataset.unsaved = value ? "true" : "false"; };
    mark(form.dataset.unsavedInitial === "true");
    form.addEventListener("input", function () { mark(true); });
    form.addEventListener("submit", function () { mark(false); });
    window.addEventListener("beforeunload", function (event) {
      if (unsaved) { event.preventDefault(); event.returnValue = ""; }
    });
  }
})();
