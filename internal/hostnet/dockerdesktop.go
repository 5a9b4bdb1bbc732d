package hostnet

// dockerDesktopRecipe is DockerDesktop mode's script, formatted with the
// container credentials port.
const dockerDesktopRecipe = `# Docker Desktop (macOS, Windows): containers run in a VM, and no rule on this
# host can redirect their packets for 169.254.169.254. Nothing is applied.
#
# One role for every container: point the SDKs at the proxy's IMDS listener.
#   docker run -e AWS_EC2_METADATA_SERVICE_ENDPOINT=http://host.docker.internal:8080/ IMAGE
# All containers then arrive from the same address (see the access log's src),
# so they are one tenant.
#
# A role per container: the container credentials endpoint, where a token
# chooses the tenant.
# 1. In the proxy's configuration:
#      server:
#        container_listen: "127.0.0.1:%[1]d"   # 0.0.0.0:%[1]d where host.docker.internal does not reach loopback
#      tenants:
#        - name: web
#          sources: ["192.0.2.10"]   # unique per tenant; any_source lets the token alone choose
#          container_credentials: {token_file: ./web.token, any_source: true}
#          credentials: {profile: dev, role_arn: "arn:aws:iam::111122223333:role/web"}
# 2. In each container:
#      AWS_CONTAINER_CREDENTIALS_FULL_URI=http://host.docker.internal:%[1]d/credentials
#      AWS_CONTAINER_AUTHORIZATION_TOKEN=<the tenant's token>   (or ..._TOKEN_FILE)
#    The SDKs accept a plain-http URI only for loopback, 169.254.170.2,
#    169.254.170.23 and fd00:ec2::23: where they refuse host.docker.internal,
#    forward a loopback port to it inside the container's network, e.g. a
#    sidecar with --network container:APP running
#      socat TCP-LISTEN:%[1]d,bind=127.0.0.1,fork,reuseaddr TCP:host.docker.internal:%[1]d
#    and use AWS_CONTAINER_CREDENTIALS_FULL_URI=http://127.0.0.1:%[1]d/credentials.
`
