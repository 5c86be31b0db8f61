import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Properties;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.DescribeConfigsOptions;
import org.apache.kafka.common.config.ConfigResource;

/**
 * Describes one broker's configs with synonyms through the Java admin client and prints one line per config, sorted
 * by name, tab-separated: name, value, source, read-only, sensitive, type, then each synonym as name=value@source.
 *
 * <p>Usage: DescribeBrokerConfigs BOOTSTRAP BROKER_ID
 */
public final class DescribeBrokerConfigs {
    private DescribeBrokerConfigs() {}

    public static void main(String[] args) throws Exception {
        Properties properties = new Properties();
        properties.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        try (Admin admin = Admin.create(properties)) {
            ConfigResource broker = new ConfigResource(ConfigResource.Type.BROKER, args[1]);
            DescribeConfigsOptions options = new DescribeConfigsOptions().includeSynonyms(true).timeoutMs(30_000);
            Config config = admin.describeConfigs(List.of(broker), options).all().get().get(broker);
            List<ConfigEntry> entries = new ArrayList<>(config.entries());
            entries.sort(Comparator.comparing(ConfigEntry::name));
            for (ConfigEntry entry : entries) {
                StringBuilder line = new StringBuilder();
                line.append(entry.name()).append('\t').append(entry.value()).append('\t').append(entry.source())
                    .append('\t').append(entry.isReadOnly()).append('\t').append(entry.isSensitive())
                    .append('\t').append(entry.type());
                for (ConfigEntry.ConfigSynonym synonym : entry.synonyms()) {
                    line.append('\t').append(synonym.name()).append('=').append(synonym.value())
                        .append('@').append(synonym.source());
                }
                System.out.println(line);
            }
        }
    }
}
