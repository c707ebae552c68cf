# Runs `dropcast watch` for Task Scheduler (Windows); install-task.ps1 registers it to
# start at log on. README "Running as a service".
#
# It keeps each run's log (stderr, JSON lines) in %LOCALAPPDATA%\dropcast\logs, the newest
# ten, and starts dropcast again 10 s after it ends with an error: Task Scheduler's own
# "restart on failure" restarts a task that fails to start, not one that exits with an
# error. It ends when dropcast ends cleanly (exit 0, after Ctrl-C or Ctrl-Break).
param(
    [string]$Dropcast = "$env:USERPROFILE\.cargo\bin\dropcast.exe",
    [string]$Config = "$env:LOCALAPPDATA\dropcast\dropcast.yaml"
)
$ErrorActionPreference = 'Stop'
$logs = Join-Path $env:LOCALAPPDATA 'dropcast\logs'
New-Item -ItemType Directory -Force -Path $logs | Out-Null
while ($true) {
    Get-ChildItem $logs -Filter 'dropcast-*.log' | Sort-Object Name |
        Select-Object -SkipLast 9 | Remove-Item
    $log = Join-Path $logs ('dropcast-{0:yyyyMMdd-HHmmss}.log' -f (Get-Date))
    $run = Start-Process -FilePath $Dropcast -NoNewWindow -PassThru `
        -ArgumentList "-c `"$Config`" --log-format json watch" `
        -RedirectStandardError $log
    $null = $run.Handle  # keeps the exit code readable once it has ended
    $run.WaitForExit()   # dropcast alone, not a browser it left behind
    if ($run.ExitCode -eq 0) { break }
    Start-Sleep -Seconds 10
}
