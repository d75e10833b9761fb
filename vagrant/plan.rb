# The Vagrant lab's nodes, from environment variables. Plain Ruby with no
# Vagrant in it, so the tests can print the plan (`ruby plan.rb`) and run the
# provisioning command of each node in dry-run mode.
#
#   VXMESH_NODES         number of VMs, node1..nodeN (default 3, at most 9)
#   VXMESH_ETCD_MEMBERS  etcd members, on node1..nodeM: 1 or 3 (default 1)
#   VXMESH_BOX           the box (default debian/bookworm64)
#   VXMESH_SUBNET        first three octets of the private network; nodeN is
#                        .(10+N) (default 192.168.56, VirtualBox's host-only range)
#   VXMESH_MEMORY        MiB per VM (default 1024)
#   VXMESH_CPUS          CPUs per VM (default 1)
require "json"

module VxmeshPlan
  # Where the Vagrantfile syncs the checkout in each VM.
  GUEST_SRC = "/vxmesh"
  # The certificates, made once on the host (deploy/tls.sh, `vxmesh certs`) before the VMs boot.
  TLS_DIR = "vagrant/tls"
  CONTROLLER_PORT = 7946
  REGISTRY_PORT = 5000

  class Error < StandardError; end

  def self.integer(env, key, default, range)
    text = env.fetch(key, default.to_s)
    value = Integer(text, 10) rescue nil
    unless value && range.cover?(value)
      raise Error, "#{key}=#{text.inspect}: must be a whole number in #{range.min}..#{range.max}"
    end
    value
  end

  def self.settings(env = ENV)
    nodes = integer(env, "VXMESH_NODES", 3, 1..9)
    etcd_members = integer(env, "VXMESH_ETCD_MEMBERS", 1, 1..9)
    unless [1, 3].include?(etcd_members) && etcd_members <= nodes
      raise Error, "VXMESH_ETCD_MEMBERS=#{etcd_members}: must be 1 or 3, and at most VXMESH_NODES (#{nodes})"
    end
    subnet = env.fetch("VXMESH_SUBNET", "192.168.56")
    unless subnet.match?(/\A\d{1,3}\.\d{1,3}\.\d{1,3}\z/) && subnet.split(".").all? { |o| o.to_i <= 255 }
      raise Error, "VXMESH_SUBNET=#{subnet.inspect}: must be three octets such as 192.168.56"
    end
    {
      "nodes" => nodes,
      "etcd_members" => etcd_members,
      "box" => env.fetch("VXMESH_BOX", "debian/bookworm64"),
      "subnet" => subnet,
      "memory" => integer(env, "VXMESH_MEMORY", 1024, 512..65536),
      "cpus" => integer(env, "VXMESH_CPUS", 1, 1..64),
    }
  end

  def self.address(settings, index)
    "#{settings['subnet']}.#{10 + index}"
  end

  # node1 runs etcd, the controller, the image registry and an agent; the
  # others run agents (and, with VXMESH_ETCD_MEMBERS=3, node2 and node3 an
  # etcd member each). Every node pulls images from node1's registry.
  def self.nodes(settings)
    controller = "#{address(settings, 1)}:#{CONTROLLER_PORT}"
    registry = "#{address(settings, 1)}:#{REGISTRY_PORT}"
    cluster = (1..settings["etcd_members"]).map { |i| "node#{i}=#{address(settings, i)}" }.join(",")
    (1..settings["nodes"]).map do |i|
      name = "node#{i}"
      role = i == 1 ? "all" : "agent"
      {
        "name" => name,
        "address" => address(settings, i),
        "role" => role,
        "provision" => ["#{GUEST_SRC}/deploy/provision.sh", "--role", role, "--name", name,
                        "--address", address(settings, i), "--controller", controller,
                        "--etcd-cluster", cluster, "--tls-dir", "#{GUEST_SRC}/#{TLS_DIR}",
                        "--registry", registry] + (i == 1 ? ["--run-registry"] : []),
      }
    end
  end

  # deploy/tls.sh's arguments: every node's certificate at once, into `dir`.
  def self.tls_args(settings, dir)
    [dir] + nodes(settings).map { |n| "#{n['name']}=#{n['address']}" }
  end
end

if __FILE__ == $PROGRAM_NAME
  begin
    settings = VxmeshPlan.settings
    puts JSON.pretty_generate(settings.merge("node_plan" => VxmeshPlan.nodes(settings),
                                             "tls" => VxmeshPlan.tls_args(settings, VxmeshPlan::TLS_DIR)))
  rescue VxmeshPlan::Error => e
    warn "error: #{e.message}"
    exit 1
  end
end
