# Debian package helpers, sourced by setup.sh and the scripts under kube/.
#   deb_installed <package>   true when the package is installed and configured
#   debs_install <package>... installs them (as root, else with sudo); it leaves sudo_cmd set to
#                             what it ran them under, empty for root, (sudo) otherwise

# Installed and configured: a package an interrupted install left unpacked counts as missing.
deb_installed() { [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]; }

debs_install() {
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  # What an interrupted install left unconfigured is finished first; apt refuses to go on otherwise.
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" dpkg --configure -a
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
