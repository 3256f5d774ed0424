{
  description = "Lamina: a multi-party video-room server (SFU) on GStreamer";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.05";
    flake-utils.url = "github:numtide/flake-utils";
  };

  outputs = { self, nixpkgs, flake-utils }:
    flake-utils.lib.eachDefaultSystem (system:
      let
        pkgs = nixpkgs.legacyPackages.${system};
        gst = pkgs.gst_all_1;
        gstPlugins = [
          gst.gstreamer
          gst.gst-plugins-base
          gst.gst-plugins-good
          gst.gst-plugins-bad
          pkgs.libnice.out
        ];
      in
      {
        devShells.default = pkgs.mkShell {
          packages = [
            pkgs.rustc
            pkgs.cargo
            pkgs.clippy
            pkgs.rustfmt
            pkgs.pkg-config
            pkgs.lld # .cargo/config.toml links with it
            pkgs.nodejs_20
            pkgs.graphviz
            gst.gstreamer.dev
            gst.gst-plugins-base.dev
            gst.gst-plugins-bad.dev
            pkgs.libnice.dev
            pkgs.glib.dev
            pkgs.openssl.dev
          ] ++ gstPlugins;
          # Let GStreamer find the plugins (nice, webrtc, vpx, opus…) and Lamina's own plugin.
          GST_PLUGIN_SYSTEM_PATH_1_0 = pkgs.lib.makeSearchPathOutput "lib" "lib/gstreamer-1.0" gstPlugins;
          shellHook = ''
            export GST_PLUGIN_PATH="$PWD/target/debug''${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
          '';
        };
      });
}
