namespace RaftMQ.Server;

/// <summary>
/// A node's identity at start-up: the one in its data directory when it has one; else, for a node started from a
/// config, the config's (the RRMQ bootstrap: cluster id from the address list, id INDEX + 1); else, for a node started
/// with <c>--join</c>, the one the cluster gives it when it adds it. A new identity is stored before the node starts.
/// </summary>
public static class NodeIdentityStart
{
    /// <summary>Finds or creates the identity; throws <see cref="ConfigException"/> with what to do when it cannot.</summary>
    public static async Task<NodeIdentity> ResolveAsync(NodeSettings settings, ClusterConfig? config, NodeAddress me, string dataDirectory)
    {
        if (NodeIdentity.Load(dataDirectory) is { } stored)
        {
            if (config is not null && settings.Join is null && stored.NodeId != ClusterConfig.NodeId(settings.Index))
            {
                Console.Error.WriteLine(
                    $"raftmq-node: note: the data directory {dataDirectory} belongs to node {ClusterConfig.IndexOf(stored.NodeId)} of cluster {stored.ClusterId}; "
                    + $"it starts as that node (INDEX {settings.Index} only says where it listens)");
            }
            // A config edited after the first start (a port, an ip) moves where the node listens, but the cluster still
            // records it, and dials it and sends clients to it, at the address of its first start: say so.
            if (config is not null && stored.Members.GetValueOrDefault(stored.NodeId) is { } recorded
                && (!string.Equals(recorded.Ip, me.Ip, StringComparison.OrdinalIgnoreCase) || recorded.Port != me.Port || recorded.InternalPort != me.InternalPort))
            {
                Console.Error.WriteLine(
                    $"raftmq-node: warning: the cluster records node {ClusterConfig.IndexOf(stored.NodeId)} at {MemberAddress.Format(recorded)}, but {settings.ConfigPath} "
                    + $"puts it at {MemberAddress.Format(me)}: it listens there, while its peers dial, and leader hints send clients to, the recorded address. "
                    + "To move a node, remove it and add it back at the new address (docs/membership.md)");
            }
            return stored;
        }
        NodeIdentity identity;
        if (settings.Join is { } join)
        {
            Console.Error.WriteLine($"raftmq-node: asking the cluster at {join} to add this node ({MemberAddress.Format(me)})");
            identity = await JoinRequest.JoinAsync(join, me, settings.NodeNumber ?? (config is not null ? settings.Index : null),
                line => Console.Error.WriteLine($"raftmq-node: {line}"), Environment.GetEnvironmentVariable(JoinRequest.ApiKeyVariable)).ConfigureAwait(false);
            Console.Error.WriteLine(
                $"raftmq-node: added to cluster {identity.ClusterId} as node {ClusterConfig.IndexOf(identity.NodeId)} (a learner until it has caught up)");
        }
        else
        {
            identity = config!.Identity(settings.Index);
        }
        try
        {
            identity.Save(dataDirectory);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException($"cannot write the node identity into '{dataDirectory}': {e.Message}");
        }
        return identity;
    }
}
