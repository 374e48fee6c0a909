{
  "targets": [
    {
      "target_name": "ciphermine_gmp",
      "sources": ["gmp_addon.c"],
      "libraries": ["-lgmp"],
      "cflags": ["-O3", "-std=c11", "-Wall"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
