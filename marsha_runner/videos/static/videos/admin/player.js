// The video detail page's HLS player: hls.js where Media Source Extensions exist, the
// browser's own HLS otherwise. data-state tells what happened, data-subtitles the subtitle
// tracks the master playlist offers ("en:English", comma-separated; read by the browser
// tests); the first one is shown as captions.
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
      hls.on(window.Hls.Events.SUBTITLE_TRACKS_UPDATED, function (event, data) {
        var names = data.subtitleTracks.map(function (track) {
          return track.lang + ":" + track.name;
        });
        video.setAttribute("data-subtitles", names.join(","));
        if (data.subtitleTracks.length) {
          hls.subtitleDisplay = true;
          hls.subtitleTrack = 0;
        }
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
