// Shows upload progress for HTMX multipart forms (a <progress id="upload-progress">).
document.body.addEventListener("htmx:xhr:progress", function (evt) {
  var bar = document.getElementById("upload-progress");
  if (!bar || !evt.detail.lengthComputable) return;
  bar.hidden = false;
  bar.value = Math.round((evt.detail.loaded / evt.detail.total) * 100);
});
