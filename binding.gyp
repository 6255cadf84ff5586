{
  "targets": [
    {
      "target_name": "hugevisor",
      "sources": [
        "<!@(node -e \"require('fs').readFileSync('native/sources.txt','utf8').split('\\n').map(s=>s.trim()).filter(s=>s&&!s.startsWith('#')).forEach(s=>console.log(s))\")"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wa,-mbranches-within-32B-boundaries", "-fno-exceptions"]
    }
  ]
}
