<#
.SYNOPSIS
  Install (or remove) the Cafilprox CA in the Windows certificate store.
.DESCRIPTION
  Imports the CA into Trusted Root Certification Authorities of the local
  machine (needs an elevated prompt) or, with -CurrentUser, of the current
  user. Equivalent to: certutil -addstore -f Root cafilprox-ca.pem
.EXAMPLE
  .\install-ca.ps1 -Source http://proxy.internal:8081/ca.pem -Sha256 <hash>
.EXAMPLE
  .\install-ca.ps1 -Uninstall
#>
param(
  # PEM file or http(s) URL; default $env:CAFILPROX_CA_URL or the local admin listener.
  [string]$Source = $(if ($env:CAFILPROX_CA_URL) { $env:CAFILPROX_CA_URL } else { 'http://127.0.0.1:8081/ca.pem' }),
  # Expected SHA-256 of the PEM file (set it when fetching over plain HTTP).
  [string]$Sha256 = $env:CAFILPROX_CA_SHA256,
  [switch]$CurrentUser,
  [switch]$Uninstall
)
$ErrorActionPreference = 'Stop'
$store = if ($CurrentUser) { 'Cert:\CurrentUser\Root' } else { 'Cert:\LocalMachine\Root' }

if ($Uninstall) {
  Get-ChildItem $store | Where-Object { $_.Subject -like 'CN=Cafilprox CA*' } | Remove-Item
  Write-Output "install-ca: removed Cafilprox CA certificates from $store"
  return
}

$tmp = Join-Path ([System.IO.Path]::GetTempPath()) ("cafilprox-ca-" + [guid]::NewGuid() + ".cer")
try {
  if ($Source -match '^https?://') {
    Invoke-WebRequest -UseBasicParsing -Uri $Source -OutFile $tmp
  } else {
    Copy-Item -LiteralPath $Source -Destination $tmp
  }
  $text = Get-Content -Raw -LiteralPath $tmp
  if ($text -notmatch '-----BEGIN CERTIFICATE-----') { throw "install-ca: $Source holds no PEM certificate" }
  if ($text -match 'PRIVATE KEY-----') { throw "install-ca: $Source contains a private key; refusing" }
  if ($Sha256) {
    $sum = (Get-FileHash -Algorithm SHA256 -LiteralPath $tmp).Hash.ToLowerInvariant()
    if ($sum -ne $Sha256.ToLowerInvariant()) { throw "install-ca: SHA-256 of $Source is $sum, want $Sha256" }
  }
  $cert = Import-Certificate -FilePath $tmp -CertStoreLocation $store
  Write-Output "install-ca: trusted $($cert.Subject) ($($cert.Thumbprint)) in $store"
} finally {
  Remove-Item -LiteralPath $tmp -ErrorAction SilentlyContinue
}
