// The video detail page's HLS player: hls.js where Media Source Extensions exist, the
// browser's own HLS otherwise. data-state tells what happened (read by the browser test).
(function () {
  "use strict";
  function start() {
    var video = document.getElementById("hls-player");
    if (!video) return;
    var src = video.getAttribute("data-src");
    if (window.Hls && window.Hls.isSupported()) {
      var hls = new window.Hls();
      hls.on(window.Hls.Events.MANIFEST_PARSED, function (event, data) {
        video.setAttribute("data-state", "manifest-loaded");
        video.setAttribute("data-levels", String(data.levels.length));
      });
      hls.on(window.Hls.Events.ERROR, function (event, data) {
        if (data.fatal) video.setAttribute("data-state", "error: " + data.details);
      });
      hls.loadSource(src);
      hls.attachMedia(video);
    } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
      video.src = src;
      video.addEventListener("loadedmetadata", function () {
        video.setAttribute("data-state", "manifest-loaded");
      });
    } else {
      video.setAttribute("data-state", "unsupported");
    }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
