# Registers dropcast with Task Scheduler (Windows): started at your log on, in a hidden
# window, by dropcast-run.ps1 (copied beside the config), with no time limit.
# README "Running as a service".
#
#   cargo install --locked --path .        # dropcast.exe in %USERPROFILE%\.cargo\bin
#   mkdir $env:LOCALAPPDATA\dropcast
#   copy sample-config.yaml $env:LOCALAPPDATA\dropcast\dropcast.yaml   # then edit it
#   powershell -ExecutionPolicy Bypass -File examples\service\install-task.ps1
#
#   Get-ScheduledTask dropcast | Get-ScheduledTaskInfo                 # is it running?
#   Unregister-ScheduledTask dropcast                                  # remove it
#
# dropcast is no Windows service (it does not speak the service control protocol), so
# it runs in your session: it starts when you log on and stops when you log off.
param(
    [string]$Dropcast = "$env:USERPROFILE\.cargo\bin\dropcast.exe",
    [string]$Config = "$env:LOCALAPPDATA\dropcast\dropcast.yaml"
)
$ErrorActionPreference = 'Stop'
$folder = Join-Path $env:LOCALAPPDATA 'dropcast'
New-Item -ItemType Directory -Force -Path $folder | Out-Null
$runner = Join-Path $folder 'dropcast-run.ps1'
Copy-Item (Join-Path $PSScriptRoot 'dropcast-run.ps1') $runner -Force
$user = "$env:USERDOMAIN\$env:USERNAME"
$arguments = "-NoProfile -NonInteractive -WindowStyle Hidden -ExecutionPolicy Bypass " +
    "-File `"$runner`" -Dropcast `"$Dropcast`" -Config `"$Config`""
$action = New-ScheduledTaskAction -Execute 'powershell.exe' -Argument $arguments `
    -WorkingDirectory $folder
$trigger = New-ScheduledTaskTrigger -AtLogOn -User $user
# No time limit (schtasks.exe would stop it after 72 hours), on battery too, one at a time.
$settings = New-ScheduledTaskSettingsSet -ExecutionTimeLimit ([TimeSpan]::Zero) `
    -AllowStartIfOnBatteries -DontStopIfGoingOnBatteries -StartWhenAvailable `
    -MultipleInstances IgnoreNew
$principal = New-ScheduledTaskPrincipal -UserId $user -LogonType Interactive -RunLevel Limited
Register-ScheduledTask -TaskName 'dropcast' -Action $action -Trigger $trigger `
    -Settings $settings -Principal $principal -Force `
    -Description 'dropcast: publish the videos dropped into a folder' | Out-Null
Start-ScheduledTask -TaskName 'dropcast'
Write-Host "dropcast runs now and at every log on. Its logs: $folder\logs"
