//! Setting up the shared stores: the DynamoDB session table.

use std::time::Duration;

use mangaassist_service::{aws_stores, dynamo_sessions};

/// Each call while creating the table, at most.
const CALL: Duration = Duration::from_secs(10);

/// `sessions-table`: creates the table (or finds it) and says which.
pub fn create_sessions_table(table: &str) -> Result<(), String> {
    let runtime = tokio::runtime::Runtime::new().map_err(|e| format!("cannot start tokio: {e}"))?;
    runtime.block_on(async {
        let sdk = aws_stores::sdk_config(CALL).await?;
        let client = aws_stores::dynamodb(&sdk);
        let created = dynamo_sessions::create_table(&client, table).await?;
        let region = sdk.region().map(ToString::to_string).unwrap_or_default();
        if created {
            println!(
                "created DynamoDB table {table} in {region} (sessionId key, TTL on expiresAt)"
            );
        } else {
            println!("DynamoDB table {table} in {region} already exists; TTL on expiresAt is on");
        }
        Ok(())
    })
}
